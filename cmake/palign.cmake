# Shared CMake helpers: warning flags, sanitizers, and palign_add_test().

function(palign_target_defaults target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  if(PALIGN_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(PALIGN_SANITIZE_ADDRESS)
    target_compile_options(${target} PRIVATE -fsanitize=address -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address)
  endif()
  if(PALIGN_SANITIZE_UNDEFINED)
    target_compile_options(${target} PRIVATE -fsanitize=undefined)
    target_link_options(${target} PRIVATE -fsanitize=undefined)
  endif()
  if(PALIGN_FUZZ)
    # Coverage for libFuzzer without its main(); the fuzz/ executables link -fsanitize=fuzzer.
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link)
    target_link_options(${target} PRIVATE -fsanitize=fuzzer-no-link)
  endif()
  if(PALIGN_SANITIZE_THREAD)
    target_compile_options(${target} PRIVATE -fsanitize=thread)
    target_link_options(${target} PRIVATE -fsanitize=thread)
  endif()
endfunction()

# palign_add_test(NAME [NO_TORCH] SOURCES ... LIBS ... LABELS ... [SLOW suite...] [SHARDS Suite=N ...]): one
# GoogleTest binary per module, registered with CTest as one test per test suite (cmake/palign_suite_tests.cmake), so
# a suite's cases share one process. Suites named in SLOW are labelled "slow" (heavy, few assertions; `scripts/test`
# leaves them out) instead of "unit". Asserts stay on in tests (NDEBUG is undefined for them).
function(palign_add_test name)
  cmake_parse_arguments(ARG "NO_TORCH" "" "SOURCES;LIBS;LABELS;SLOW;SHARDS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  palign_target_defaults(${name})
  target_compile_options(${name} PRIVATE -UNDEBUG)
  target_compile_definitions(${name} PRIVATE PALIGN_TEST_DATA_DIR="${PROJECT_SOURCE_DIR}/tests/data")
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} palign_test_support GTest::gtest GTest::gtest_main)
  if(NOT ARG_NO_TORCH)
    target_precompile_headers(${name} PRIVATE <torch/torch.h> <gtest/gtest.h>)
  endif()
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  set(ctest_file "${CMAKE_CURRENT_BINARY_DIR}/${name}_suites.cmake")
  string(REGEX REPLACE "^palign_(.*)_test$" "\\1." prefix "${name}")  # CTest names: "runtime.Suite"
  # Lists travel comma-separated: a ";" would split the command's argument.
  string(REPLACE ";" "," labels "${ARG_LABELS}")
  string(REPLACE ";" "," slow "${ARG_SLOW}")
  string(REPLACE ";" "," shards "${ARG_SHARDS}")
  add_custom_command(
    TARGET ${name} POST_BUILD
    BYPRODUCTS "${ctest_file}"
    COMMAND "${CMAKE_COMMAND}" -D "EXE=$<TARGET_FILE:${name}>" -D "CTEST_FILE=${ctest_file}" -D "PREFIX=${prefix}"
            -D "LABELS=${labels}" -D "SLOW=${slow}" -D "SHARDS=${shards}" -D "TIMEOUT=1500"
            -P "${PROJECT_SOURCE_DIR}/cmake/palign_suite_tests.cmake"
    VERBATIM)
  set(include_file "${CMAKE_CURRENT_BINARY_DIR}/${name}_include.cmake")
  file(WRITE "${include_file}" "if(EXISTS \"${ctest_file}\")\n  include(\"${ctest_file}\")\nelse()\n"
       "  add_test(${name}_NOT_BUILT ${name}_NOT_BUILT)\nendif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${include_file}")
endfunction()
