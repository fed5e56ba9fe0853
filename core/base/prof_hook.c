/* prof_hook.c — storage for the profiler hook pointer (torsh/prof_hook.h). */
#include "torsh/prof_hook.h"

const ts_prof_hooks *volatile ts_prof_active_hooks = NULL;

void ts_prof_set_hooks(const ts_prof_hooks *hooks) { ts_prof_active_hooks = hooks; }
