/* planwire.h: the engine's side of the per-iteration plans — identity, lifetimes, probes. */
#ifndef GS_PLANWIRE_H
#define GS_PLANWIRE_H

#include "handle.h"
#include "plan.h"

/* A new iteration starts (engine.c): collects the probes of the one that ended, turns it into a
 * plan and records its decisions on the timeline when they changed. */
void gs__planwire_iteration(uint64_t it);

/* Whether the current iteration's graph is consumed: every handle it made has died, or its first
 * saved tensor (the last one backward reaches) was unpacked — retain_graph keeps handles alive. */
bool gs__planwire_iteration_done(void);

/* The decision for a candidate tensor t; probes it first on probe iterations. */
gs_policy_decision gs__planwire_decide(PyObject *t, const gs_policy_desc *d, gs_plan_reason *reason);

/* After pack made cap (or found a duplicate): records tensor d->index of iteration `it`. */
void gs__planwire_pack(PyObject *cap, uint64_t it, const gs_policy_desc *d, gs_plan_reason reason,
                       gs_skip_reason skip, bool candidate, bool relu);

/* Unpack and handle death (unpack.c, handle.c). */
void gs__planwire_unpack(const gs_handle *h);
void gs__planwire_death(const gs_handle *h);

/* Probe callables from the Python bootstrap (module.c: set_probe). Steals nothing. */
void gs__probe_set(PyObject *probe, PyObject *collect);
/* Probes t as tensor k of the current iteration; 0 or -1 (errors are cleared, never raised). */
int gs__probe_tensor(PyObject *t, uint32_t k);
/* Hands the finished probes to the plan (gs__plan_note_probe). */
void gs__probe_collect(void);

#endif
