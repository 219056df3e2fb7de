# Flow table and TCP reassembly tests (area "stream").
kw_add_test(test_tcp_reasm SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_tcp_reasm.c LIBS kw_capture)
kw_add_test(test_flow SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_flow.c LIBS kw_capture)
# keywarden streams vs tcpflow on every capture of tests/corpus (skips
# without tcpflow).
kw_add_test(test_streams_corpus SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_streams_corpus.c
  LIBS kw_capture LABELS corpus TIMEOUT 300)
kw_add_test(test_streams_dump SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_streams_dump.c
  LIBS kw_capture)
