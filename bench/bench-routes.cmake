# bench_routes: ns per transaction of the learned route model against the
# cold-start template, over a `kwsim apis` truth file; not a ctest.
add_executable(bench_routes ${CMAKE_CURRENT_SOURCE_DIR}/bench_routes.c)
target_link_libraries(bench_routes PRIVATE kw_shapes kw_path PkgConfig::JANSSON)
