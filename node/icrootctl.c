/* icrootctl: the operator's tool (see ctl.c). */
#include "ic_node.h"

int main(int argc, char **argv)
{
    return ic_ctl_main(argc, argv);
}
