/*
 * ctest.h: a minimal, minctest-style check header for C99 and C++ test programs.
 *
 *   CHECK(cond)            count a check; on failure print file:line and the condition
 *   CHECK_EQ_INT(a, b)     same for two integers, printing both values
 *   CHECK_STR(s)           a non-NULL, non-empty string
 *   CTEST_NOTE(...)        printf-style note on stdout
 *   CTEST_SUMMARY()        print "N checks, F failed" and evaluate to the exit code
 *
 * Failures never stop the program, so one run reports every failing check; the
 * exit code (from CTEST_SUMMARY) is non-zero when any check failed. Include it in one
 * translation unit only (the counters are file-static).
 */
#ifndef CTEST_H
#define CTEST_H

#include <stdio.h>

static long ctest_checks = 0;
static long ctest_failures = 0;

/* Records one check; returns cond so that callers can skip dependent checks. */
static inline int ctest_check(int cond, const char *file, int line, const char *what) {
    ++ctest_checks;
    if (!cond) {
        ++ctest_failures;
        fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, what);
        fflush(stderr);
    }
    return cond;
}

static inline int ctest_check_eq_int(long long a, long long b, const char *file, int line,
                                     const char *sa, const char *sb) {
    ++ctest_checks;
    if (a != b) {
        ++ctest_failures;
        fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", file, line, sa, sb, a,
                b);
        fflush(stderr);
        return 0;
    }
    return 1;
}

#define CHECK(cond) ctest_check((cond) ? 1 : 0, __FILE__, __LINE__, #cond)
#define CHECK_EQ_INT(a, b) \
    ctest_check_eq_int((long long)(a), (long long)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_STR(s) CHECK((s) != NULL && (s)[0] != '\0')
#define CTEST_NOTE printf
#define CTEST_SUMMARY()                                                           \
    (printf("%ld checks, %ld failed\n", ctest_checks, ctest_failures), fflush(stdout), \
     ctest_failures == 0 ? 0 : 1)

#endif /* CTEST_H */
