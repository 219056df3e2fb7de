# cli/: keywarden fingerprint (area: cred).
list(APPEND KW_CLI_SRCS ${CMAKE_CURRENT_SOURCE_DIR}/cmd_fingerprint.c)
list(APPEND KW_CLI_DEFS KW_HAVE_CMD_FINGERPRINT)
