/* test_install.c: the installed library as a user builds on it (issue 16), by running
 * tests/install_check.sh for the build the tests run against (the folder of ALEXNET_BIN): make
 * install into a temporary prefix, both examples built with pkg-config alone and run (classify
 * agrees with `alexnet classify`), nm -D against include/alexnet.h, soname, man page, DESTDIR and
 * uninstall. Skipped where the script skips (no cc or pkg-config, a sanitizer build). */
#include "harness.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TEST(install_examples_pkg_config) {
    const char *bin = getenv("ALEXNET_BIN") ? getenv("ALEXNET_BIN") : "build/alexnet";
    char build[1024], cmd[1200];
    snprintf(build, sizeof build, "%s", bin);
    char *slash = strrchr(build, '/');
    if (slash) *slash = 0; else snprintf(build, sizeof build, ".");
    snprintf(cmd, sizeof cmd, "bash tests/install_check.sh '%s' 2>&1", build);
    FILE *p = popen(cmd, "r");
    char line[1024] = "", last[1024] = "", failed[4096] = "", skipped[1024] = "";
    while (p && fgets(line, sizeof line, p)) {
        snprintf(last, sizeof last, "%s", line);
        if (!strncmp(line, "FAIL", 4) && strlen(failed) + strlen(line) < sizeof failed) strcat(failed, line);
        if (strstr(line, "skipped: ")) snprintf(skipped, sizeof skipped, "%s", strstr(line, "skipped: ") + 9);
    }
    int rc = p ? pclose(p) : -1;
    if (*skipped) {
        skipped[strcspn(skipped, "\n")] = 0;
        SKIP("install check: %s", skipped);
    }
    int pass = 0, fail = -1;
    CHECK(sscanf(last, "%d passed, %d failed", &pass, &fail) == 2, "no summary: %s", last);
    CHECK(rc == 0 && fail == 0 && pass >= 20, "%d passed, %d failed:\n%s%s", pass, fail, failed, last);
}
