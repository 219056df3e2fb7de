# IP fragment reassembly (area "defrag").
list(APPEND KW_CAPTURE_SRCS ${CMAKE_CURRENT_SOURCE_DIR}/defrag.c)
