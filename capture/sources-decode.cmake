# capture/ decode half: packet sources (libpcap) and decoders (+ tunnels).
list(APPEND KW_CAPTURE_SRCS
  ${CMAKE_CURRENT_SOURCE_DIR}/source.c
  ${CMAKE_CURRENT_SOURCE_DIR}/dec.c
  ${CMAKE_CURRENT_SOURCE_DIR}/dec_tunnel.c)
