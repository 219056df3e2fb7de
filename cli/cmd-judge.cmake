# keywarden judge: the judging side of a fleet (docs/fleet.md), issue 16.
list(APPEND KW_CLI_SRCS ${CMAKE_CURRENT_SOURCE_DIR}/cmd_judge.c)
list(APPEND KW_CLI_DEFS KW_HAVE_CMD_JUDGE)
list(APPEND KW_CLI_LIBS kw_fleet)
