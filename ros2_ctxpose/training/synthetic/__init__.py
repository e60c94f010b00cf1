"""Synthetic data engine: rendered people whose 3D joints are known, seen by the real detector.

Human3.6M mocap poses Anny bodies of random adult phenotypes (``body``, ``retarget``), dressed
(``appearance``) and rendered with pyrender in scenes made of photographs, floors, occluders and
robot-like or Human3.6M cameras (``backgrounds``, ``scene``, ``render``). The project's own
YOLO11n-pose runs on every render and each detection that matches a rendered person is stored with
its feature crops and its 3D target (``image_people``; the fields are ``schema``, the files
``shards``), so the lifter's image-context branch can train on exactly what it sees at inference.
``worker`` makes one shard in one process, ``generate`` is the ``ctxpose synth`` command (shards,
processes, resume), ``summary`` its report; ``preview`` draws a contact sheet for checking by eye.

Every module here needs the optional ``[synth]`` dependencies (anny, pyrender, OSMesa); importing
this package alone does not.
"""
