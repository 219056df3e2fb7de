# bench_pipeline: one stage of the packet path per process (bare, decode,
# flow, http) for bench/run.sh; not a ctest. See bench/README.md.
add_executable(bench_pipeline ${CMAKE_CURRENT_SOURCE_DIR}/bench_pipeline.c)
target_link_libraries(bench_pipeline PRIVATE kw_analyzer kw_capture kw_base)
