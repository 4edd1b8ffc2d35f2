/*
 * hookbench: how much one tracefs hook adds to one cheap kernel function, measured from user
 * space inside a Debian arm64 kernel booted by `pb linux-compare` under QEMU `-icount shift=0`.
 *
 * The function is __arm64_sys_getpid, the handler of getpid(2): invoke_syscall() reaches it through
 * the syscall table on every raw `svc #0` with x8 = __NR_getpid, it is traceable (two patchable
 * NOPs at its entry), its body is a few loads (task_tgid_vnr(current)), nothing else on a quiet
 * system calls it, and its name has not changed from 6.1 to 6.12.
 *
 * For every variant the program switches the hook on through tracefs, makes WARMUP calls, then
 * SAMPLES samples of CALLS calls each, each sample bracketed by two reads of CLOCK_MONOTONIC (the
 * vDSO: no syscall) and two reads of the PMU instruction counter (perf_event_open), and as many
 * empty brackets, whose cost pb subtracts. Under -icount shift=0 guest time advances one
 * nanosecond per retired instruction, so both clocks count instructions.
 *
 * It prints what it measured and what tracefs says fired, one `@linux ` line each; pb (the host)
 * parses them, checks that every hook fired exactly once per call and turns them into @bench
 * records. Nothing is judged here, so every check is host-tested.
 *
 * Output lines (VARIANT is one of the names in `variants` below):
 *   @linux begin
 *   @linux kernel RELEASE
 *   @linux hooked NAME
 *   @linux calls-per-sample N
 *   @linux cntfrq HZ
 *   @linux pmu available | @linux pmu unavailable: REASON
 *   @linux VARIANT unavailable: REASON
 *   @linux VARIANT error: WHAT
 *   @linux VARIANT calls N                  getpid calls made while the hook was on
 *   @linux VARIANT clock-bracket V V ...    nanoseconds of each empty bracket
 *   @linux VARIANT clock-sample V V ...     nanoseconds of each sample (CALLS calls + bracket)
 *   @linux VARIANT pmu-bracket V V ...      the same in PMU instructions (if the PMU counts)
 *   @linux VARIANT pmu-sample V V ...
 *   @linux VARIANT file PATH: LINE          a tracefs line saying what is attached or recorded
 *   @linux end
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define TRACEFS "/sys/kernel/tracing"
#define FUNC "__arm64_sys_getpid"
/* The second function tracer lives in this tracefs instance. */
#define INSTANCE "instances/pb2"
#define WARMUP 1000
#define CALLS 1000
#define SAMPLES 31

static int pmu_fd = -1;

/* One raw getpid(2): no libc wrapper, no caching, the same few user instructions every time. */
static inline void getpid_raw(void)
{
	register long x8 __asm__("x8") = __NR_getpid;
	register long x0 __asm__("x0");
	__asm__ volatile("svc #0" : "=r"(x0) : "r"(x8) : "memory");
}

static uint64_t clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t pmu_read(void)
{
	uint64_t v = 0;
	if (pmu_fd >= 0 && read(pmu_fd, &v, sizeof(v)) != sizeof(v))
		v = 0;
	return v;
}

/* Writes `value` to a tracefs file (truncating it if `truncate`); 0 or a printed error. */
static int put_mode(const char *variant, const char *file, const char *value, int truncate)
{
	char path[384];
	snprintf(path, sizeof(path), "%s/%s", TRACEFS, file);
	int fd = open(path, O_WRONLY | (truncate ? O_TRUNC : O_APPEND));
	if (fd < 0) {
		printf("@linux %s error: open %s: %s\n", variant, file, strerror(errno));
		return -1;
	}
	size_t len = strlen(value);
	ssize_t n = write(fd, value, len);
	int err = errno;
	close(fd);
	if (len > 0 && n != (ssize_t)len) {
		printf("@linux %s error: write '%s' to %s: %s\n", variant, value, file, strerror(err));
		return -1;
	}
	return 0;
}

static int put(const char *variant, const char *file, const char *value)
{
	return put_mode(variant, file, value, 1);
}

/* Prints the lines of a tracefs file that contain `match`. */
static void show(const char *variant, const char *file, const char *match)
{
	char path[384], line[512];
	snprintf(path, sizeof(path), "%s/%s", TRACEFS, file);
	FILE *f = fopen(path, "r");
	if (!f) {
		printf("@linux %s error: open %s: %s\n", variant, file, strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (strstr(line, match))
			printf("@linux %s file %s: %s\n", variant, file, line);
	}
	fclose(f);
}

/* The ring buffer's counters of every CPU (entries written and kept, entries overwritten). */
static void show_stats(const char *variant)
{
	DIR *d = opendir(TRACEFS "/per_cpu");
	struct dirent *e;
	char file[300];
	if (!d) {
		printf("@linux %s error: open per_cpu: %s\n", variant, strerror(errno));
		return;
	}
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "cpu", 3))
			continue;
		snprintf(file, sizeof(file), "per_cpu/%s/stats", e->d_name);
		show(variant, file, "entries:");
		show(variant, file, "overrun:");
	}
	closedir(d);
}

/* Whether tracefs documents fprobe events (`f:`), i.e. the kernel has CONFIG_FPROBE_EVENTS. */
static int has_fprobe_events(void)
{
	char line[512];
	int found = 0;
	FILE *f = fopen(TRACEFS "/README", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "f[:[<group>/][<event>]] <func-name>"))
			found = 1;
	fclose(f);
	return found;
}

/* Everything off and empty: no tracer, no filter, no probes, no instance, an empty buffer. */
static void reset(const char *variant)
{
	put(variant, "tracing_on", "0");
	put(variant, "current_tracer", "nop");
	put(variant, "set_ftrace_filter", "");
	put(variant, "events/enable", "0");
	put(variant, "kprobe_events", "");
	if (access(TRACEFS "/dynamic_events", F_OK) == 0)
		put(variant, "dynamic_events", "");
	if (access(TRACEFS "/" INSTANCE, F_OK) == 0) {
		put(variant, INSTANCE "/current_tracer", "nop");
		put(variant, INSTANCE "/set_ftrace_filter", "");
		if (rmdir(TRACEFS "/" INSTANCE))
			printf("@linux %s error: rmdir %s: %s\n", variant, INSTANCE, strerror(errno));
	}
	put(variant, "trace", "");
}

static void print_values(const char *variant, const char *what, const uint64_t *v)
{
	printf("@linux %s %s", variant, what);
	for (int i = 0; i < SAMPLES; i++)
		printf(" %llu", (unsigned long long)v[i]);
	printf("\n");
}

/* WARMUP calls, then SAMPLES empty brackets and SAMPLES samples of CALLS calls. */
static void measure(const char *variant)
{
	static uint64_t cb[SAMPLES], cs[SAMPLES], pb[SAMPLES], ps[SAMPLES];
	for (int i = 0; i < WARMUP; i++)
		getpid_raw();
	for (int s = 0; s < SAMPLES; s++) {
		uint64_t t0 = clock_ns(), p0 = pmu_read();
		uint64_t p1 = pmu_read(), t1 = clock_ns();
		cb[s] = t1 - t0;
		pb[s] = p1 - p0;
	}
	for (int s = 0; s < SAMPLES; s++) {
		uint64_t t0 = clock_ns(), p0 = pmu_read();
		for (int i = 0; i < CALLS; i++)
			getpid_raw();
		uint64_t p1 = pmu_read(), t1 = clock_ns();
		cs[s] = t1 - t0;
		ps[s] = p1 - p0;
	}
	printf("@linux %s calls %d\n", variant, WARMUP + SAMPLES * CALLS);
	print_values(variant, "clock-bracket", cb);
	print_values(variant, "clock-sample", cs);
	if (pmu_fd >= 0) {
		print_values(variant, "pmu-bracket", pb);
		print_values(variant, "pmu-sample", ps);
	}
}

/* One way of hooking FUNC: what to write to tracefs, whether the ring buffer records. */
struct variant {
	const char *name;
	/* (file, value) pairs written in order; NULL-terminated. */
	const char *writes[14];
	int recording;
	int needs_fprobe_events;
};

/* What each kind of hook writes; the -off variant and the recording one write the same. */
#define FUNCTION_TRACER { "set_ftrace_filter", FUNC, "current_tracer", "function", NULL }
#define KPROBE                                                                                 \
	{ "kprobe_events", "p:pb/getpid_entry " FUNC, "events/pb/getpid_entry/enable", "1", NULL }
#define KRETPROBE                                                                              \
	{ "kprobe_events", "r:pb/getpid_exit " FUNC, "events/pb/getpid_exit/enable", "1", NULL }

static const struct variant variants[] = {
	{ "baseline", { NULL }, 0, 0 },
	{ "function-off", FUNCTION_TRACER, 0, 0 },
	{ "function", FUNCTION_TRACER, 1, 0 },
	{ "function-x2-off",
	  { "set_ftrace_filter", FUNC, "current_tracer", "function", "MKDIR", INSTANCE,
	    INSTANCE "/tracing_on", "0", INSTANCE "/set_ftrace_filter", FUNC,
	    INSTANCE "/current_tracer", "function", NULL },
	  0, 0 },
	{ "function-graph",
	  { "set_ftrace_filter", FUNC, "current_tracer", "function_graph", NULL },
	  1, 0 },
	{ "kprobe-off", KPROBE, 0, 0 },
	{ "kprobe", KPROBE, 1, 0 },
	{ "kretprobe-off", KRETPROBE, 0, 0 },
	{ "kretprobe", KRETPROBE, 1, 0 },
	{ "fprobe",
	  { "dynamic_events", "f:pb/getpid_fentry " FUNC, "APPEND dynamic_events",
	    "f:pb/getpid_fexit " FUNC "%return", "events/pb/enable", "1", NULL },
	  1, 1 },
};

static void run(const struct variant *v)
{
	reset(v->name);
	if (v->needs_fprobe_events && !has_fprobe_events()) {
		printf("@linux %s unavailable: tracefs README has no fprobe event syntax "
		       "(kernel built without CONFIG_FPROBE_EVENTS)\n",
		       v->name);
		return;
	}
	for (int i = 0; v->writes[i]; i += 2) {
		const char *file = v->writes[i], *value = v->writes[i + 1];
		int failed;
		if (!strcmp(file, "MKDIR")) {
			char path[256];
			snprintf(path, sizeof(path), "%s/%s", TRACEFS, value);
			failed = mkdir(path, 0755);
			if (failed)
				printf("@linux %s error: mkdir %s: %s\n", v->name, value,
				       strerror(errno));
		} else if (!strncmp(file, "APPEND ", 7)) {
			failed = put_mode(v->name, file + 7, value, 0);
		} else {
			failed = put(v->name, file, value);
		}
		if (failed) {
			reset(v->name);
			return;
		}
	}
	if (v->recording && put(v->name, "tracing_on", "1")) {
		reset(v->name);
		return;
	}
	measure(v->name);
	put(v->name, "tracing_on", "0");
	show(v->name, "enabled_functions", FUNC);
	show(v->name, "kprobe_profile", "getpid");
	show_stats(v->name);
	reset(v->name);
}

static void open_pmu(void)
{
	struct perf_event_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.type = PERF_TYPE_HARDWARE;
	attr.size = sizeof(attr);
	attr.config = PERF_COUNT_HW_INSTRUCTIONS;
	attr.exclude_hv = 1;
	pmu_fd = syscall(__NR_perf_event_open, &attr, 0, -1, -1, 0);
	if (pmu_fd < 0) {
		printf("@linux pmu unavailable: perf_event_open(PERF_COUNT_HW_INSTRUCTIONS): %s\n",
		       strerror(errno));
		return;
	}
	/* A counter the emulator does not drive reads 0 whatever runs. */
	uint64_t p0 = pmu_read();
	for (int i = 0; i < 10; i++)
		getpid_raw();
	if (pmu_read() == p0) {
		printf("@linux pmu unavailable: the instruction counter does not advance\n");
		close(pmu_fd);
		pmu_fd = -1;
		return;
	}
	printf("@linux pmu available\n");
}

int main(void)
{
	struct utsname u;
	uint64_t cntfrq;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("@linux begin\n");
	uname(&u);
	printf("@linux kernel %s\n", u.release);
	printf("@linux hooked %s\n", FUNC);
	printf("@linux calls-per-sample %d\n", CALLS);
	__asm__ volatile("mrs %0, cntfrq_el0" : "=r"(cntfrq));
	printf("@linux cntfrq %llu\n", (unsigned long long)cntfrq);
	open_pmu();
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++)
		run(&variants[i]);
	printf("@linux end\n");
	return 0;
}
