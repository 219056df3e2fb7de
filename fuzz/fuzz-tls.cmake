# fuzz/: TLS record layer and connection, handshake parsers, key log reader
# (area: tls); seeds in corpus/fuzz_tls*.
kw_add_fuzz(fuzz_tls SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_tls.c LIBS kw_tls)
kw_add_fuzz(fuzz_tls_hs SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_tls_hs.c LIBS kw_tls)
kw_add_fuzz(fuzz_tls_keylog SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_tls_keylog.c LIBS kw_tls)
