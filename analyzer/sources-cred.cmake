# analyzer/: credential extraction, JWT decoding, nDPI classification (area: cred).
list(APPEND KW_ANALYZER_SRCS
  ${CMAKE_CURRENT_SOURCE_DIR}/cred.c
  ${CMAKE_CURRENT_SOURCE_DIR}/jwt.c
  ${CMAKE_CURRENT_SOURCE_DIR}/classify.c)
