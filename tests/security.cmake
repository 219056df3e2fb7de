# Hardening tests of issue 15 (docs/security.md). Label "security" plus
# "e2e" for the ones that run keywarden over a capture.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET keywarden)
  # Query-string secrets: every name of the default redaction list, sent
  # by curl on lo, is absent from EVE, stdout, syslog, Slack, webhook and
  # the database. Needs root (tcpdump, unshare); skipped otherwise.
  add_test(NAME e2e_secrets
    COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/e2e_secrets.py
            $<TARGET_FILE:keywarden> ${CMAKE_CURRENT_SOURCE_DIR}/tools/receiver.py)
  set_tests_properties(e2e_secrets PROPERTIES LABELS "security;e2e" TIMEOUT 180
    SKIP_RETURN_CODE 77)
endif()
if(Python3_Interpreter_FOUND AND TARGET keywarden)
  # run turns core dumps off (RLIMIT_CORE 0, not dumpable), seen from
  # /proc while it runs as nobody. Needs root; skipped otherwise.
  add_test(NAME e2e_nodump
    COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/e2e_nodump.py
            $<TARGET_FILE:keywarden>)
  set_tests_properties(e2e_nodump PROPERTIES LABELS "security;e2e" TIMEOUT 60
    SKIP_RETURN_CODE 77)
endif()
if(Python3_Interpreter_FOUND AND TARGET keywarden)
  # Terminal escapes: Host, User-Agent, path and a Basic user name carrying
  # ESC/OSC/CSI, C1, bidi overrides and BS, sent on lo, show escaped in
  # the alert lines, audit, baseline show, rules suggest and report. Needs
  # root (tcpdump); skipped otherwise.
  add_test(NAME e2e_escapes
    COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/e2e_escapes.py
            $<TARGET_FILE:keywarden>)
  set_tests_properties(e2e_escapes PROPERTIES LABELS "security;e2e" TIMEOUT 120
    SKIP_RETURN_CODE 77)
endif()
if(Python3_Interpreter_FOUND AND TARGET keywarden)
  # Backend personalities (issue 15): curl sends method/URL overrides and a
  # double-encoded path to a backend that honours them, on lo; replayed as
  # generic and as express, each forbidden effective request alerts with
  # the trick named, and the records carry the flags and override fields.
  # Needs root (tcpdump); skipped otherwise.
  add_test(NAME e2e_persona
    COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/e2e_persona.py
            $<TARGET_FILE:keywarden>)
  set_tests_properties(e2e_persona PROPERTIES LABELS "security;e2e" TIMEOUT 120
    SKIP_RETURN_CODE 77)
endif()
if(Python3_Interpreter_FOUND AND TARGET keywarden)
  # The evasion suite through real reverse proxies (issue 15): nginx
  # (proxy_pass with and without a URI) and Apache (ProxyPass, and
  # nocanon) on 127.0.0.1 in front of a backend recording what reached it
  # and what its handler ran; every request that ran a forbidden method or
  # path was alerted by keywarden (generic). Needs root, nginx, apache2,
  # curl; skipped otherwise.
  add_test(NAME e2e_proxies
    COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/e2e_proxies.py
            $<TARGET_FILE:keywarden>)
  set_tests_properties(e2e_proxies PROPERTIES LABELS "security;e2e" TIMEOUT 180
    SKIP_RETURN_CODE 77)
endif()
if(Python3_Interpreter_FOUND AND TARGET keywarden)
  # The evasion suite against real frameworks (issue 15): Debian's Express,
  # Django, Flask and Spring MVC on Tomcat (tests/frameworks/) on 127.0.0.1, three routes answering
  # which handler ran and as what method; every request whose handler was a
  # forbidden one is alerted with the framework's backend personality.
  # Needs root (tcpdump) and curl; a framework not installed is left out,
  # skipped when none is.
  add_test(NAME e2e_frameworks
    COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/e2e_frameworks.py
            $<TARGET_FILE:keywarden>)
  set_tests_properties(e2e_frameworks PROPERTIES LABELS "security;e2e" TIMEOUT 120
    SKIP_RETURN_CODE 77)
endif()
if(Python3_Interpreter_FOUND AND TARGET keywarden)
  # Claimed identities (issue 15): curl -u (any password) and a JWT with a
  # garbage signature as identities claimed by Basic user and iss+sub, and
  # a bearer token matched by fingerprint, on lo; alerts of the first two
  # say "claimed identity", records carry attribution/claimed. Needs root
  # (tcpdump); skipped otherwise.
  add_test(NAME e2e_claimed
    COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/e2e_claimed.py
            $<TARGET_FILE:keywarden>)
  set_tests_properties(e2e_claimed PROPERTIES LABELS "security;e2e" TIMEOUT 120
    SKIP_RETURN_CODE 77)
endif()
