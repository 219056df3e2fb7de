# tests/: credentials, JWT and nDPI classification (area: cred).
kw_add_test(test_cred SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_cred.c
  LIBS kw_analyzer PkgConfig::PCAP PkgConfig::CRYPTO LABELS unit TIMEOUT 60)
kw_add_test(test_classify SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_classify.c
  LIBS kw_analyzer PkgConfig::PCAP LABELS unit TIMEOUT 60)
