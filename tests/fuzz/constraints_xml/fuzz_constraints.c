/* libFuzzer driver: the <constraints> payload parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ic_node.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ic_constraints_doc doc;
    int rc = ic_constraints_parse((const char *)data, size, &doc);

    if (rc == 0) {
        if (doc.n > IC_CONSTRAINTS_MAX)
            abort();
        for (size_t i = 0; i < doc.n; i++)
            if (doc.c[i].attribute == NULL || doc.c[i].value == NULL ||
                strlen(doc.c[i].value) > IC_CONSTRAINT_TEXT_MAX)
                abort();
        ic_constraints_doc_free(&doc);
    } else if (doc.error[0] == '\0') {
        abort();
    }
    return 0;
}
