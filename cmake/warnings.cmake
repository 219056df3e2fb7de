# Warnings and sanitizers applied to every keywarden target through kw_options.
add_library(kw_options INTERFACE)
target_compile_options(kw_options INTERFACE
  -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes
  -Wformat=2 -Wvla -Wno-unused-parameter)
target_compile_definitions(kw_options INTERFACE _GNU_SOURCE)
if(KW_WERROR)
  target_compile_options(kw_options INTERFACE -Werror)
endif()
if(KW_LIBFUZZER)
  # Coverage instrumentation for every library, so the fuzzers see inside
  # the code they drive (without it libFuzzer only sees the target file).
  target_compile_options(kw_options INTERFACE -fsanitize=fuzzer-no-link)
  target_link_options(kw_options INTERFACE -fsanitize=fuzzer-no-link)
endif()
if(KW_TSAN)
  # ThreadSanitizer (issue 15): the threaded tests under it find data races
  # between the packet, judge, writer and delivery threads. Not with
  # KW_SANITIZE (ASan and TSan exclude each other).
  target_compile_options(kw_options INTERFACE -fsanitize=thread -fno-omit-frame-pointer)
  target_link_options(kw_options INTERFACE -fsanitize=thread)
endif()
if(KW_SANITIZE)
  target_compile_options(kw_options INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(kw_options INTERFACE -fsanitize=address,undefined)
endif()

# kw_library(NAME SOURCES <srcs...> DEPS <targets...>): one static library
# per top-level folder. While a folder has no sources yet it is an INTERFACE
# library, so the tree configures at every step of its growth.
function(kw_library name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  if(A_SOURCES)
    add_library(${name} STATIC ${A_SOURCES})
    target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
    target_link_libraries(${name} PUBLIC ${A_DEPS})
  else()
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${CMAKE_CURRENT_SOURCE_DIR})
    target_link_libraries(${name} INTERFACE ${A_DEPS})
  endif()
endfunction()
