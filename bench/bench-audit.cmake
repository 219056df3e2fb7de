# bench_audit: audit rows per second through the database writer (issue 13
# target >= 200k rows/s); not a ctest. See bench/README.md.
add_executable(bench_audit ${CMAKE_CURRENT_SOURCE_DIR}/bench_audit.c)
target_link_libraries(bench_audit PRIVATE kw_store kw_base)
