/* lock.c - see lock.h. */
#include "lock.h"

#include <stdlib.h>

#ifdef _WIN32
#include <windows.h>
#undef CreateMutex /* windows.h maps it to CreateMutexA; ours is a struct member */
#else
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#endif

static CK_C_INITIALIZE_ARGS app;   /* the application's callbacks, if used */
static void *app_mutex;
static int use_app;
#ifdef _WIN32
static CRITICAL_SECTION *os_mutex;
#else
static pthread_mutex_t *os_mutex;
#endif

CK_RV lock_init(const CK_C_INITIALIZE_ARGS *args)
{
    int given = 0;
    use_app = 0;
    app_mutex = NULL;
    if (args) {
        int n = !!args->CreateMutex + !!args->DestroyMutex + !!args->LockMutex +
                !!args->UnlockMutex;
        if (args->pReserved != NULL || (n != 0 && n != 4))
            return CKR_ARGUMENTS_BAD;
        given = n == 4;
    }
    if (given) {
        /* Both "callbacks only" and "callbacks or OS" are honoured with the
         * callbacks: we never need CKR_CANT_LOCK. */
        CK_RV rv;
        app = *args;
        rv = app.CreateMutex(&app_mutex);
        if (rv != CKR_OK)
            return rv;
        use_app = 1;
        return CKR_OK;
    }
    /* No callbacks: OS locking, whether or not CKF_OS_LOCKING_OK is set (an
     * application that promised single-threaded use loses nothing). */
#ifdef _WIN32
    os_mutex = malloc(sizeof *os_mutex);
    if (!os_mutex)
        return CKR_HOST_MEMORY;
    InitializeCriticalSection(os_mutex);
#else
    os_mutex = malloc(sizeof *os_mutex);
    if (!os_mutex)
        return CKR_HOST_MEMORY;
    if (pthread_mutex_init(os_mutex, NULL) != 0) {
        free(os_mutex);
        os_mutex = NULL;
        return CKR_CANT_LOCK;
    }
#endif
    return CKR_OK;
}

void lock_destroy(void)
{
    if (use_app) {
        app.DestroyMutex(app_mutex);
        app_mutex = NULL;
        use_app = 0;
    } else if (os_mutex) {
#ifdef _WIN32
        DeleteCriticalSection(os_mutex);
#else
        pthread_mutex_destroy(os_mutex);
#endif
        free(os_mutex);
        os_mutex = NULL;
    }
}

void lock_abandon(void)
{
    /* Deliberately leaked: destroying a mutex another (vanished) thread held
     * is undefined. */
    use_app = 0;
    app_mutex = NULL;
    os_mutex = NULL;
}

void lock_enter(void)
{
    if (use_app)
        app.LockMutex(app_mutex);
    else if (os_mutex) {
#ifdef _WIN32
        EnterCriticalSection(os_mutex);
#else
        pthread_mutex_lock(os_mutex);
#endif
    }
}

void lock_leave(void)
{
    if (use_app)
        app.UnlockMutex(app_mutex);
    else if (os_mutex) {
#ifdef _WIN32
        LeaveCriticalSection(os_mutex);
#else
        pthread_mutex_unlock(os_mutex);
#endif
    }
}

#ifdef _WIN32
static volatile LONG guard;
void init_guard_enter(void)
{
    while (InterlockedCompareExchange(&guard, 1, 0) != 0)
        Sleep(0);
}
void init_guard_leave(void) { InterlockedExchange(&guard, 0); }
unsigned long current_pid(void) { return (unsigned long)GetCurrentProcessId(); }
void sleep_ms(int ms) { Sleep((DWORD)ms); }
#else
static pthread_mutex_t guard = PTHREAD_MUTEX_INITIALIZER;
void init_guard_enter(void) { pthread_mutex_lock(&guard); }
void init_guard_leave(void) { pthread_mutex_unlock(&guard); }
unsigned long current_pid(void) { return (unsigned long)getpid(); }
void sleep_ms(int ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}
#endif
