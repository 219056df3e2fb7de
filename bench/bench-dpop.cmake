# bench_dpop: the cost of reading and verifying a DPoP proof per request,
# next to a plain Bearer request (issue 17). Not a ctest (bench/README.md).
add_executable(bench_dpop ${CMAKE_CURRENT_SOURCE_DIR}/bench_dpop.c
  ${CMAKE_SOURCE_DIR}/tests/oauth_mint.c)
target_include_directories(bench_dpop PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(bench_dpop PRIVATE kw_identity kw_base PkgConfig::CRYPTO)
