# Storage and output failures (issue 18): real failures around a real
# `keywarden run` (tests/e2e_storage.py, one ctest per case). Cases that
# need root (capture on lo, a tmpfs in a private mount namespace) skip
# with 77 without it.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET keywarden)
  set(_kwsim "")
  if(TARGET kwsim)
    set(_kwsim $<TARGET_FILE:kwsim>)
  endif()
  foreach(case fifo_hup check_bpf busy receiver read_only corrupt disk_full sigkill modes)
    add_test(NAME e2e_storage_${case}
      COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/e2e_storage.py ${case}
              $<TARGET_FILE:keywarden> ${_kwsim})
    set_tests_properties(e2e_storage_${case} PROPERTIES LABELS "e2e;storage" TIMEOUT 120
      SKIP_RETURN_CODE 77)
  endforeach()
endif()

# kw_eve under real output failures (file-size limit, SIGKILL mid-write,
# torn tail, rotation).
kw_add_test(test_eve SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_eve.c LABELS storage TIMEOUT 120)
