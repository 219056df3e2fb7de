# audit trail: writer thread (store/audit.c), queries for `keywarden audit` (audit_query.c).
list(APPEND KW_STORE_SRCS ${CMAKE_CURRENT_SOURCE_DIR}/audit.c ${CMAKE_CURRENT_SOURCE_DIR}/audit_query.c
     ${CMAKE_CURRENT_SOURCE_DIR}/audit_text.c)
