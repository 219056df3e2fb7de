# audit trail (store/audit.c): writer thread + queries for `keywarden audit`.
list(APPEND KW_STORE_SRCS ${CMAKE_CURRENT_SOURCE_DIR}/audit.c ${CMAKE_CURRENT_SOURCE_DIR}/audit_text.c)
