# Parser-alone throughput benchmark (area: http); not a ctest.
add_executable(bench_h1 ${CMAKE_CURRENT_SOURCE_DIR}/bench_h1.c)
target_link_libraries(bench_h1 PRIVATE kw_http1 kw_base)
