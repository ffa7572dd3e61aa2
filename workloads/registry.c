#include <string.h>

#include "workloads/ob_workload.h"

extern const ob_workload ob_resnet50_workload;
extern const ob_workload ob_bert_workload;

static const ob_workload *const workloads[] = {&ob_resnet50_workload, &ob_bert_workload};

int ob_workload_count(void) { return (int)(sizeof workloads / sizeof workloads[0]); }
const ob_workload *ob_workload_at(int i) { return workloads[i]; }

const ob_workload *ob_workload_find(const char *name) {
    for (int i = 0; i < ob_workload_count(); i++)
        if (strcmp(workloads[i]->name, name) == 0) return workloads[i];
    return NULL;
}

const ob_preset *ob_workload_preset(const ob_workload *workload, const char *preset_name) {
    for (int i = 0; i < workload->n_presets; i++)
        if (strcmp(workload->presets[i].name, preset_name) == 0) return &workload->presets[i];
    return NULL;
}
