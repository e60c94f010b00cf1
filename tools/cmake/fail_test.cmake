# A ctest test that fails with REASON (CMakeLists.txt: when `colcon test` could not run the suite).
message(FATAL_ERROR "${REASON}")
