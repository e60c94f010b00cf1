# Injected with -DCMAKE_PROJECT_INCLUDE=... by scripts/bootstrap.sh when building against the ROS 2
# PyPI wheels in a venv (not against a system ROS). It mends two things that only that setup hits,
# in this build only: the installed wheels stay untouched, so a fresh venv needs nothing special.
#
# 1. The wheels were built in a manylinux container, and their exported CMake targets still name
#    that container's Python headers (/opt/python/cp311-cp311/...), which CMake rejects as
#    "non-existent path". Such paths are swapped for this interpreter's own include directories.
# 2. rosidl_generator_py puts the Python and NumPy include directories in the PUBLIC interface of
#    the generated library. With the venv inside the repository, CMake refuses to export them
#    ("prefixed in the source directory"); they are needed to compile, not by consumers, so they
#    are kept for the build only.
find_package(Python3 REQUIRED COMPONENTS Interpreter Development.Module NumPy)

function(_ros_wheels_replace_foreign_include_dirs target)
  get_target_property(_dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
  if(NOT _dirs)
    return()
  endif()
  set(_fixed "")
  foreach(_dir IN LISTS _dirs)
    if(_dir MATCHES "/numpy/(_core/)?include$" AND NOT EXISTS "${_dir}")
      list(APPEND _fixed ${Python3_NumPy_INCLUDE_DIRS})
    elseif(_dir MATCHES "/include/python3\\.[0-9]+$" AND NOT EXISTS "${_dir}")
      list(APPEND _fixed ${Python3_INCLUDE_DIRS})
    else()
      list(APPEND _fixed "${_dir}")
    endif()
  endforeach()
  if(NOT _fixed STREQUAL _dirs)
    list(REMOVE_DUPLICATES _fixed)
    set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_fixed}")
  endif()
endfunction()

function(_ros_wheels_keep_venv_include_dirs_private target)
  get_target_property(_dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
  if(NOT _dirs)
    return()
  endif()
  set(_fixed "")
  foreach(_dir IN LISTS _dirs)
    string(FIND "${_dir}" "${CMAKE_SOURCE_DIR}/" _in_source)
    string(FIND "${_dir}" "${CMAKE_BINARY_DIR}/" _in_build)
    if(_in_source EQUAL 0 AND NOT _in_build EQUAL 0)
      list(APPEND _fixed "$<BUILD_INTERFACE:${_dir}>")
    else()
      list(APPEND _fixed "${_dir}")
    endif()
  endforeach()
  set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_fixed}")
endfunction()

function(ros_wheels_fixups)
  get_directory_property(_imported DIRECTORY "${CMAKE_SOURCE_DIR}" IMPORTED_TARGETS)
  foreach(_target IN LISTS _imported)
    _ros_wheels_replace_foreign_include_dirs(${_target})
  endforeach()
  get_directory_property(_own DIRECTORY "${CMAKE_SOURCE_DIR}" BUILDSYSTEM_TARGETS)
  foreach(_target IN LISTS _own)
    get_target_property(_type ${_target} TYPE)
    if(NOT _type STREQUAL "UTILITY")
      _ros_wheels_keep_venv_include_dirs_private(${_target})
    endif()
  endforeach()
endfunction()

cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL ros_wheels_fixups)
