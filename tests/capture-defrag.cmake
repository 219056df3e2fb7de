# IP fragment reassembly: the table of awkward orders, limits, timeouts, and
# the corpus captures that carry fragments (area "defrag").
kw_add_test(test_defrag SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_defrag.c LIBS kw_capture
  LABELS capture corpus)
