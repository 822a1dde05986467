/*
 * internal.h — what the files of libfaults share and nobody else may use:
 * the thread-local error message. Not installed, not included outside
 * faults/.
 */
#ifndef FAULTDRILL_FAULTS_INTERNAL_H
#define FAULTDRILL_FAULTS_INTERNAL_H

/* Bytes of faults_errmsg(), NUL included; longer messages are cut. */
#define FAULTS_ERRMSG_MAX 256

/* Sets this thread's faults_errmsg() (printf format). */
void faults_errmsg_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* FAULTDRILL_FAULTS_INTERNAL_H */
