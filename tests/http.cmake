# Tests of the HTTP/1.x parser, normalisation and templates (area: http).
kw_add_test(test_norm SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_norm.c LIBS kw_http_obj
  LABELS http unit)
kw_add_test(test_h1 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_h1.c LIBS kw_http_obj
  LABELS http unit TIMEOUT 120)
