# rules/: loader, predicates (schedule across DST, scope), reload; judge_policy.
kw_add_test(test_rules SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_rules.c LIBS kw_rules
  LABELS rules)
kw_add_test(test_rules_pred SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_rules_pred.c LIBS kw_rules
  LABELS rules)
kw_add_test(test_judge_policy SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_judge_policy.c
  LIBS kw_analyzer kw_rules LABELS rules)
# Backend personalities: raw requests through h1, persona and the judge.
kw_add_test(test_persona SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_persona.c
  LIBS kw_analyzer kw_rules LABELS rules unit)
