# Flow table, TCP reassembly and the tcpflow-style stream dumper (area "stream").
list(APPEND KW_CAPTURE_SRCS
  ${CMAKE_CURRENT_SOURCE_DIR}/flow.c
  ${CMAKE_CURRENT_SOURCE_DIR}/tcp_reasm.c
  ${CMAKE_CURRENT_SOURCE_DIR}/streams_dump.c)
