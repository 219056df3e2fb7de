# Tests of the capture decode half: decoders (hand-built packets, corpus,
# encapsulated twins) and packet sources (files, stdin, live on lo).
kw_add_test(test_dec SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_dec.c LIBS kw_capture LABELS capture)
kw_add_test(test_dec_corpus SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_dec_corpus.c
  LIBS kw_capture LABELS capture corpus)
kw_add_test(test_source SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_source.c LIBS kw_capture
  LABELS capture)
kw_add_test(test_source_live SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_source_live.c
  LIBS kw_capture LABELS capture live TIMEOUT 60)
