/* check_run.h: runs a Check suite and turns its result into the program's exit status. */
#ifndef GS_CHECK_RUN_H
#define GS_CHECK_RUN_H

#include <check.h>
#include <stdlib.h>

/* One runner for every unit-test program, so they all report and exit the same way. */
static inline int gs_check_run(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
