# Tests of the HTTP/1.x parser, normalisation and templates (area: http).
kw_add_test(test_norm SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_norm.c LIBS kw_http1
  LABELS http unit)
kw_add_test(test_h1 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_h1.c LIBS kw_http1
  LABELS http unit TIMEOUT 120)
# Differential test against libhtp (test-only dependency).
# Debian's htp.pc names an include dir that does not exist, so the
# imported target is unusable: link the libraries, include <htp/htp.h>.
pkg_check_modules(HTP htp)
if(HTP_FOUND)
  kw_add_test(test_h1_libhtp SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_h1_libhtp.c
    LIBS kw_http1 ${HTP_LINK_LIBRARIES} LABELS http corpus TIMEOUT 300)
endif()
