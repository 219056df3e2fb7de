# tests/: the TLS library (area: tls).
kw_add_test(test_tls SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_tls.c LIBS kw_tls
  LABELS tls unit)
pkg_check_modules(LIBSSL REQUIRED IMPORTED_TARGET libssl)
kw_add_test(test_tls_decrypt SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_tls_decrypt.c
  LIBS kw_tls PkgConfig::LIBSSL LABELS tls unit TIMEOUT 120)
# Real TLS on loopback (openssl s_server/curl, mTLS, HAProxy's own key log)
# recorded with tcpdump; tshark is the oracle (tests/e2e_tls.py). Needs root.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET keywarden)
  add_test(NAME e2e_tls COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/e2e_tls.py
    $<TARGET_FILE:keywarden> ${CMAKE_CURRENT_SOURCE_DIR}/data/tls/suricata-eve.schema.json)
  # RUN_SERIAL: e2e_live_lo floods lo with tcpreplay, which would make tcpdump drop
  set_tests_properties(e2e_tls PROPERTIES LABELS "tls;e2e" TIMEOUT 180 SKIP_RETURN_CODE 77
    RUN_SERIAL TRUE)
endif()
