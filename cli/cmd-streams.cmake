# `keywarden streams` (area "stream").
list(APPEND KW_CLI_SRCS ${CMAKE_CURRENT_SOURCE_DIR}/cmd_streams.c)
list(APPEND KW_CLI_DEFS KW_HAVE_CMD_STREAMS)
