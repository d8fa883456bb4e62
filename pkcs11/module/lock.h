/* lock.h - the module's one lock: the application's mutex callbacks when it
 * gives them, else the OS (pthread mutex / CRITICAL_SECTION). */
#ifndef CPSD_LOCK_H
#define CPSD_LOCK_H

#include "cryptoki.h"

/* Validates CK_C_INITIALIZE_ARGS and creates the lock; NULL args allowed. */
CK_RV lock_init(const CK_C_INITIALIZE_ARGS *args);
void lock_destroy(void);
/* Forgets the lock without touching it: after fork() it may be held by a
 * thread that does not exist in the child. */
void lock_abandon(void);
void lock_enter(void);
void lock_leave(void);

/* Serialises C_Initialize/C_Finalize, which run before/after the lock exists. */
void init_guard_enter(void);
void init_guard_leave(void);

/* The process id, to tell a forked child from the process that initialised. */
unsigned long current_pid(void);

/* For waiting without a condition variable (the application's mutex
 * callbacks give none): drop the lock, sleep, take it again. */
void sleep_ms(int ms);

#endif
