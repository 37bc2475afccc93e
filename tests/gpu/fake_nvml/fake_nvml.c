/*
 * A fake libnvidia-ml.so.1 for the tests of spe-gpu-agent: the NVML calls the agent makes, with
 * the real signatures, answering from a scenario file instead of a driver. nvidia-ml-py loads it
 * exactly as it loads the real library (dlopen("libnvidia-ml.so.1"), found via LD_LIBRARY_PATH).
 *
 * The scenario is the file named by FAKE_NVML_SCENARIO, re-read whenever its modification time
 * changes (a test edits it while the agent runs). One statement per line, '#' starts a comment:
 *
 *   init <code>                        nvmlInit returns this NVML_ERROR_* code (e.g. 9: no driver)
 *   driver <version>
 *   epoch <unix seconds>               time origin of the utilisation timelines (default: load time)
 *   gpu <i> name <the rest of the line>
 *   gpu <i> uuid <uuid>
 *   gpu <i> memory <total bytes> <used bytes>
 *   gpu <i> util <offset s> <percent>  from epoch + offset on, utilisation is <percent> (repeatable)
 *   gpu <i> mig <0|1>
 *   gpu <i> mig_device <uuid> <memory total bytes>   (repeatable)
 *   gpu <i> process <pid> <used bytes>                (repeatable)
 *   gpu <i> mig_process <j> <pid> <used bytes>       a process on MIG instance j (repeatable)
 *   gpu <i> lost                        every call on the device returns NVML_ERROR_GPU_IS_LOST
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <pthread.h>

typedef int nvmlReturn_t;
enum {
    NVML_SUCCESS = 0, NVML_ERROR_UNINITIALIZED = 1, NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3, NVML_ERROR_INSUFFICIENT_SIZE = 7, NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_NOT_FOUND = 6, NVML_ERROR_GPU_IS_LOST = 15, NVML_ERROR_UNKNOWN = 999,
};

#define MAX_GPUS 16
#define MAX_POINTS 64
#define MAX_PROCS 64
#define MAX_MIG 7

typedef struct { unsigned int pid; unsigned long long usedGpuMemory; unsigned int gpuInstanceId; unsigned int computeInstanceId; } nvmlProcessInfo_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;

struct device;
struct device {
    int present, lost, is_mig, mig_mode, n_points, n_procs, n_mig;
    char name[96], uuid[96];
    unsigned long long mem_total, mem_used;
    double at[MAX_POINTS];
    unsigned int util[MAX_POINTS];
    nvmlProcessInfo_t procs[MAX_PROCS];
    struct device *parent;
    struct device *mig[MAX_MIG];
};
typedef struct device *nvmlDevice_t;

static struct device gpus[MAX_GPUS];
static struct device migs[MAX_GPUS][MAX_MIG];
static int n_gpus, init_code, initialised;
static char driver[80] = "550.54.15";
static double epoch;
static time_t loaded_mtime = -1;
static long loaded_mtime_ns = -1;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void parse(FILE *f) {
    char line[512];
    memset(gpus, 0, sizeof gpus);
    memset(migs, 0, sizeof migs);
    n_gpus = 0; init_code = 0; epoch = now_s();
    strcpy(driver, "550.54.15");
    while (fgets(line, sizeof line, f)) {
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        line[strcspn(line, "\r\n")] = 0;
        char key[32] = "", sub[32] = "";
        int i = -1, off = 0;
        if (sscanf(line, "%31s%n", key, &off) != 1) continue;
        char *rest = line + off;
        if (!strcmp(key, "init")) { init_code = atoi(rest); continue; }
        if (!strcmp(key, "driver")) { sscanf(rest, "%79s", driver); continue; }
        if (!strcmp(key, "epoch")) { epoch = atof(rest); continue; }
        if (strcmp(key, "gpu") || sscanf(rest, "%d %31s%n", &i, sub, &off) != 2 || i < 0 || i >= MAX_GPUS) continue;
        rest += off;
        while (*rest == ' ' || *rest == '\t') rest++;
        struct device *d = &gpus[i];
        d->present = 1;
        if (i + 1 > n_gpus) n_gpus = i + 1;
        if (!strcmp(sub, "name")) snprintf(d->name, sizeof d->name, "%s", rest);
        else if (!strcmp(sub, "uuid")) sscanf(rest, "%95s", d->uuid);
        else if (!strcmp(sub, "memory")) sscanf(rest, "%llu %llu", &d->mem_total, &d->mem_used);
        else if (!strcmp(sub, "mig")) d->mig_mode = atoi(rest);
        else if (!strcmp(sub, "lost")) d->lost = 1;
        else if (!strcmp(sub, "util") && d->n_points < MAX_POINTS) {
            if (sscanf(rest, "%lf %u", &d->at[d->n_points], &d->util[d->n_points]) == 2) d->n_points++;
        } else if (!strcmp(sub, "process") && d->n_procs < MAX_PROCS) {
            nvmlProcessInfo_t *p = &d->procs[d->n_procs];
            if (sscanf(rest, "%u %llu", &p->pid, &p->usedGpuMemory) == 2) {
                p->gpuInstanceId = p->computeInstanceId = 0xFFFFFFFF;
                d->n_procs++;
            }
        } else if (!strcmp(sub, "mig_process")) {
            int j = -1;
            unsigned int pid;
            unsigned long long used;
            if (sscanf(rest, "%d %u %llu", &j, &pid, &used) == 3 && j >= 0 && j < d->n_mig && d->mig[j]->n_procs < MAX_PROCS) {
                nvmlProcessInfo_t *p = &d->mig[j]->procs[d->mig[j]->n_procs++];
                p->pid = pid;
                p->usedGpuMemory = used;
                p->gpuInstanceId = (unsigned int)j;
                p->computeInstanceId = 0;
            }
        } else if (!strcmp(sub, "mig_device") && d->n_mig < MAX_MIG) {
            struct device *m = &migs[i][d->n_mig];
            if (sscanf(rest, "%95s %llu", m->uuid, &m->mem_total) == 2) {
                m->present = m->is_mig = 1;
                m->parent = d;
                snprintf(m->name, sizeof m->name, "MIG instance %d", d->n_mig);
                d->mig[d->n_mig++] = m;
            }
        }
    }
}

/* Re-read the scenario when it changed; called with the lock held. */
static void refresh(void) {
    const char *path = getenv("FAKE_NVML_SCENARIO");
    struct stat st;
    if (!path || stat(path, &st) != 0) {
        if (loaded_mtime != 0) { n_gpus = 0; init_code = NVML_ERROR_DRIVER_NOT_LOADED; loaded_mtime = 0; }
        return;
    }
    if (st.st_mtim.tv_sec == loaded_mtime && st.st_mtim.tv_nsec == loaded_mtime_ns) return;
    FILE *f = fopen(path, "r");
    if (!f) return;
    parse(f);
    fclose(f);
    loaded_mtime = st.st_mtim.tv_sec;
    loaded_mtime_ns = st.st_mtim.tv_nsec;
}

static nvmlReturn_t enter(void) {
    pthread_mutex_lock(&lock);
    refresh();
    if (!initialised) { pthread_mutex_unlock(&lock); return NVML_ERROR_UNINITIALIZED; }
    return NVML_SUCCESS;
}

static nvmlReturn_t leave(nvmlReturn_t r) { pthread_mutex_unlock(&lock); return r; }

static nvmlReturn_t device_ok(nvmlDevice_t d) {
    if (!d || !d->present) return NVML_ERROR_INVALID_ARGUMENT;
    if (d->lost || (d->parent && d->parent->lost)) return NVML_ERROR_GPU_IS_LOST;
    return NVML_SUCCESS;
}

static nvmlReturn_t copy_str(const char *src, char *dst, unsigned int len) {
    if (!dst) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(src) + 1 > len) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(dst, src);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    pthread_mutex_lock(&lock);
    refresh();
    nvmlReturn_t r = init_code;
    if (r == NVML_SUCCESS) initialised++;
    return leave(r);
}
nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
nvmlReturn_t nvmlInit(void) { return nvmlInitWithFlags(0); }

nvmlReturn_t nvmlShutdown(void) {
    pthread_mutex_lock(&lock);
    if (!initialised) return leave(NVML_ERROR_UNINITIALIZED);
    initialised--;
    return leave(NVML_SUCCESS);
}

const char *nvmlErrorString(nvmlReturn_t r) {
    switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int len) {
    nvmlReturn_t r = enter();
    if (r) return r;
    return leave(copy_str(driver, version, len));
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    nvmlReturn_t r = enter();
    if (r) return r;
    if (!count) return leave(NVML_ERROR_INVALID_ARGUMENT);
    *count = (unsigned int)n_gpus;
    return leave(NVML_SUCCESS);
}
nvmlReturn_t nvmlDeviceGetCount(unsigned int *count) { return nvmlDeviceGetCount_v2(count); }

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    nvmlReturn_t r = enter();
    if (r) return r;
    if (!device || index >= (unsigned int)n_gpus || !gpus[index].present) return leave(NVML_ERROR_INVALID_ARGUMENT);
    *device = &gpus[index];
    return leave(gpus[index].lost ? NVML_ERROR_GPU_IS_LOST : NVML_SUCCESS);
}
nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device) {
    return nvmlDeviceGetHandleByIndex_v2(index, device);
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int len) {
    nvmlReturn_t r = enter();
    if (r || (r = device_ok(d))) return r == NVML_ERROR_UNINITIALIZED ? r : leave(r);
    return leave(copy_str(d->name, name, len));
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int len) {
    nvmlReturn_t r = enter();
    if (r || (r = device_ok(d))) return r == NVML_ERROR_UNINITIALIZED ? r : leave(r);
    return leave(copy_str(d->uuid, uuid, len));
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *memory) {
    nvmlReturn_t r = enter();
    if (r || (r = device_ok(d))) return r == NVML_ERROR_UNINITIALIZED ? r : leave(r);
    if (!memory) return leave(NVML_ERROR_INVALID_ARGUMENT);
    memory->total = d->mem_total;
    memory->used = d->mem_used > d->mem_total ? d->mem_total : d->mem_used;
    memory->free = memory->total - memory->used;
    return leave(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *util) {
    nvmlReturn_t r = enter();
    if (r || (r = device_ok(d))) return r == NVML_ERROR_UNINITIALIZED ? r : leave(r);
    if (!util) return leave(NVML_ERROR_INVALID_ARGUMENT);
    if (d->is_mig || d->mig_mode) return leave(NVML_ERROR_NOT_SUPPORTED);  /* as the real driver */
    double t = now_s() - epoch;
    unsigned int value = 0;
    for (int k = 0; k < d->n_points; k++)
        if (d->at[k] <= t) value = d->util[k];
    util->gpu = value;
    util->memory = value / 2;
    return leave(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned int *current, unsigned int *pending) {
    nvmlReturn_t r = enter();
    if (r || (r = device_ok(d))) return r == NVML_ERROR_UNINITIALIZED ? r : leave(r);
    if (!current || !pending) return leave(NVML_ERROR_INVALID_ARGUMENT);
    *current = *pending = (unsigned int)d->mig_mode;
    return leave(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t d, unsigned int *count) {
    nvmlReturn_t r = enter();
    if (r || (r = device_ok(d))) return r == NVML_ERROR_UNINITIALIZED ? r : leave(r);
    if (!count) return leave(NVML_ERROR_INVALID_ARGUMENT);
    *count = d->mig_mode ? MAX_MIG : 0;
    return leave(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t d, unsigned int index, nvmlDevice_t *mig) {
    nvmlReturn_t r = enter();
    if (r || (r = device_ok(d))) return r == NVML_ERROR_UNINITIALIZED ? r : leave(r);
    if (!mig || !d->mig_mode || index >= MAX_MIG) return leave(NVML_ERROR_INVALID_ARGUMENT);
    if (index >= (unsigned int)d->n_mig) return leave(NVML_ERROR_NOT_FOUND);
    *mig = d->mig[index];
    return leave(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *count, nvmlProcessInfo_t *infos) {
    nvmlReturn_t r = enter();
    if (r || (r = device_ok(d))) return r == NVML_ERROR_UNINITIALIZED ? r : leave(r);
    if (!count) return leave(NVML_ERROR_INVALID_ARGUMENT);
    unsigned int n = (unsigned int)d->n_procs;
    if (n == 0) { *count = 0; return leave(NVML_SUCCESS); }
    if (!infos || *count < n) { *count = n; return leave(NVML_ERROR_INSUFFICIENT_SIZE); }
    memcpy(infos, d->procs, n * sizeof *infos);
    *count = n;
    return leave(NVML_SUCCESS);
}
