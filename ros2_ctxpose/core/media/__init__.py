"""Images, folders of images and videos read as one stream of frames, without ever raising.

Batch tools run over whatever a user points them at; one corrupt file in a folder of thousands
must cost one error line, not the run. Every failure therefore becomes a ``Frame`` with an
``error`` and no image, and the caller decides how to report it.

Hostile and damaged input is refused before it costs anything, and never passes silently:

* Decompression bombs: the size an image declares in its header (PNG IHDR, JPEG SOF, BMP, TIFF,
  WebP, PNM) is read by ``probe_image_size`` before any pixel is decoded and checked against
  ``max_pixels`` (``PipelineConfig.max_image_pixels``); formats whose header is not understood
  are refused rather than handed to a decoder unchecked. Videos are checked on their declared
  frame size.
* Damage that decodes "successfully": libjpeg fills a JPEG cut short (even one given a fake end
  marker) with grey and only prints a warning, FFmpeg conceals broken video frames and a
  truncated video just ends early. The decoders' messages on the process's stderr are captured
  while decoding (``captured_native_stderr``) and damage reports become errors; a video that
  ends before the frame count its container declares gets an error frame for the shortfall.
* Dangling symbolic links, FIFOs and other non-files in a folder get an error frame too.

Modules: ``inputs`` (``iter_frames``: paths -> frames), ``images`` (``read_image``,
``decode_image_bytes``), ``videos`` (a video's frames, ``demo_video_path``), ``image_header``
(``probe_image_size``, ``check_declared_size``), ``decoder_messages`` (``captured_native_stderr``),
``prefetch`` (``prefetched``: the background reader), ``frame`` (``Frame``, ``MediaError``).
"""
