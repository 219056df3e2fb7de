# tests/: HTTP/2 and gRPC (area: http2).
kw_add_test(test_h2 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_h2.c LIBS kw_http2
  LABELS http2 unit)
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET keywarden)
  # Differential: the captures e2e_h2 recorded (tests/data/h2) against
  # tshark's HTTP/2 decoding, every request the same, nothing invented.
  add_test(NAME h2_oracle COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/h2_oracle.py
    $<TARGET_FILE:keywarden> ${CMAKE_CURRENT_SOURCE_DIR}/data/h2)
  set_tests_properties(h2_oracle PROPERTIES LABELS "http2;corpus;tshark" TIMEOUT 120)
  # Real servers and clients on loopback (nghttpd/nghttp, curl, nghttpx
  # h2c, TLS ALPN h2, python3-grpcio) recorded with tcpdump; tshark as the
  # oracle. Needs root; serial: tcpdump on lo.
  add_test(NAME e2e_h2 COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/e2e_h2.py
    $<TARGET_FILE:keywarden>)
  set_tests_properties(e2e_h2 PROPERTIES LABELS "http2;e2e;live" TIMEOUT 300
    SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
endif()
