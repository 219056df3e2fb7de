# bench_tls: TLS record decryption next to the bare libcrypto loop; and
# bench/tls.sh: the full path over TLS vs the same world in clear. Not
# ctests (bench/README.md).
add_executable(bench_tls ${CMAKE_CURRENT_SOURCE_DIR}/bench_tls.c)
target_link_libraries(bench_tls PRIVATE kw_tls kw_base)
