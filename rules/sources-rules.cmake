# rules/: config and rule files (libfyaml), validation, policy model.
list(APPEND KW_RULES_SRCS
  ${CMAKE_CURRENT_SOURCE_DIR}/rules_diag.c
  ${CMAKE_CURRENT_SOURCE_DIR}/rules_value.c
  ${CMAKE_CURRENT_SOURCE_DIR}/rules_config.c
  ${CMAKE_CURRENT_SOURCE_DIR}/rules_services.c
  ${CMAKE_CURRENT_SOURCE_DIR}/rules_fleet.c
  ${CMAKE_CURRENT_SOURCE_DIR}/rules_limits.c
  ${CMAKE_CURRENT_SOURCE_DIR}/rules_ident.c
  ${CMAKE_CURRENT_SOURCE_DIR}/rules_scope.c
  ${CMAKE_CURRENT_SOURCE_DIR}/rules_oauth.c
  ${CMAKE_CURRENT_SOURCE_DIR}/rules_attr.c
  ${CMAKE_CURRENT_SOURCE_DIR}/rules_pred.c
  ${CMAKE_CURRENT_SOURCE_DIR}/rules_load.c)
