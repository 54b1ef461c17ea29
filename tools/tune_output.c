/* facl-tune's results (see tune.h): the override file, kept in the format and under the
 * rules the library reads it with (src/tuning_file.c), so that the library uses it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tune.h"

void tune_entry_for(const tune_options *o, const tune_device *dev, const char *path,
                    const facl_tuning_params *best, facl_tuning_entry *e, char *note,
                    size_t note_size)
{
    note[0] = '\0';
    memset(e, 0, sizeof *e);
    char text[FACL_TUNING_FILE_MAX_BYTES + 1], why[256];
    facl_tuning_entry old;
    /* A file tuned before for another head-dim class or kernel path keeps those values;
     * one for another device, or that does not parse, is replaced (and said so). */
    if (path && strcmp(path, "-") != 0 &&
        facl_tuning_read_file(path, 0, text, sizeof text, why, sizeof why) == 1) {
        if (facl_tuning_parse(text, &old, why, sizeof why) != 0)
            snprintf(note, note_size, "replacing %s, which does not parse (%s)", path, why);
        else if (!facl_tuning_names_device(&old, dev->vendor, dev->architecture, dev->name))
            snprintf(note, note_size, "replacing %s, which names %s / %s / %s", path, old.vendor,
                     old.architecture, old.device);
        else
            *e = old;
    }
    snprintf(e->vendor, sizeof e->vendor, "%s", dev->vendor);
    snprintf(e->architecture, sizeof e->architecture, "%s", dev->architecture);
    snprintf(e->device, sizeof e->device, "%s", dev->name);
    facl_tuning_params *cls = &e->d[facl_tuning_class(o->hdim)];
    for (int i = 0; i < FACL_TUNING_FIELDS; ++i) {
        const int v = facl_tuning_field_value(best, i);
        if (v) *facl_tuning_field(cls, i) = v;
    }
}

/* The directory of `path` (mode 0700 when made here: the cache directory's rule). */
static int make_parent(const char *path)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = '\0';
    if (mkdir(dir, 0700) == 0 || errno == EEXIST) return 0;
    fprintf(stderr, "facl-tune: cannot create %s: %s\n", dir, strerror(errno));
    return -1;
}

int tune_write_file(const char *path, const char *text)
{
    if (make_parent(path) != 0) return -1;
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    /* 0600 whatever the umask: the library refuses a file in its cache directory that
     * group or others could write. */
    const int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "facl-tune: cannot write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    const size_t len = strlen(text);
    const ssize_t n = write(fd, text, len);
    const int ok = n == (ssize_t)len && fsync(fd) == 0;
    if (close(fd) != 0 || !ok || rename(tmp, path) != 0) {
        fprintf(stderr, "facl-tune: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
