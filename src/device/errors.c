/* OpenCL and CLBlast status names and hints, and the fatal reporters behind
 * CL_CHECK / CLBLAST_CHECK. */
#include <stdio.h>
#include <string.h>
#include <clblast_c.h>

#include "cldetr/device.h"

/* Every status code with its name: OpenCL's, then CLBlast's (CLBlast reuses
 * OpenCL's codes for OpenCL errors: those then have both names). */
typedef struct { int code; const char *name; } status_name;
#define S(x) {x, #x}
static const status_name status_names[] = {
    S(CL_SUCCESS), S(CL_DEVICE_NOT_FOUND), S(CL_DEVICE_NOT_AVAILABLE), S(CL_COMPILER_NOT_AVAILABLE),
    S(CL_MEM_OBJECT_ALLOCATION_FAILURE), S(CL_OUT_OF_RESOURCES), S(CL_OUT_OF_HOST_MEMORY),
    S(CL_PROFILING_INFO_NOT_AVAILABLE), S(CL_MEM_COPY_OVERLAP), S(CL_IMAGE_FORMAT_MISMATCH),
    S(CL_IMAGE_FORMAT_NOT_SUPPORTED), S(CL_BUILD_PROGRAM_FAILURE), S(CL_MAP_FAILURE),
    S(CL_MISALIGNED_SUB_BUFFER_OFFSET), S(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST),
    S(CL_COMPILE_PROGRAM_FAILURE), S(CL_LINKER_NOT_AVAILABLE), S(CL_LINK_PROGRAM_FAILURE),
    S(CL_DEVICE_PARTITION_FAILED), S(CL_KERNEL_ARG_INFO_NOT_AVAILABLE), S(CL_INVALID_VALUE),
    S(CL_INVALID_DEVICE_TYPE), S(CL_INVALID_PLATFORM), S(CL_INVALID_DEVICE), S(CL_INVALID_CONTEXT),
    S(CL_INVALID_QUEUE_PROPERTIES), S(CL_INVALID_COMMAND_QUEUE), S(CL_INVALID_HOST_PTR), S(CL_INVALID_MEM_OBJECT),
    S(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR), S(CL_INVALID_IMAGE_SIZE), S(CL_INVALID_SAMPLER), S(CL_INVALID_BINARY),
    S(CL_INVALID_BUILD_OPTIONS), S(CL_INVALID_PROGRAM), S(CL_INVALID_PROGRAM_EXECUTABLE), S(CL_INVALID_KERNEL_NAME),
    S(CL_INVALID_KERNEL_DEFINITION), S(CL_INVALID_KERNEL), S(CL_INVALID_ARG_INDEX), S(CL_INVALID_ARG_VALUE),
    S(CL_INVALID_ARG_SIZE), S(CL_INVALID_KERNEL_ARGS), S(CL_INVALID_WORK_DIMENSION), S(CL_INVALID_WORK_GROUP_SIZE),
    S(CL_INVALID_WORK_ITEM_SIZE), S(CL_INVALID_GLOBAL_OFFSET), S(CL_INVALID_EVENT_WAIT_LIST), S(CL_INVALID_EVENT),
    S(CL_INVALID_OPERATION), S(CL_INVALID_GL_OBJECT), S(CL_INVALID_BUFFER_SIZE), S(CL_INVALID_MIP_LEVEL),
    S(CL_INVALID_GLOBAL_WORK_SIZE), S(CL_INVALID_PROPERTY), S(CL_INVALID_IMAGE_DESCRIPTOR),
    S(CL_INVALID_COMPILER_OPTIONS), S(CL_INVALID_LINKER_OPTIONS), S(CL_INVALID_DEVICE_PARTITION_COUNT),
    {-1001, "CL_PLATFORM_NOT_FOUND_KHR"},
    S(CLBlastSuccess), S(CLBlastOpenCLCompilerNotAvailable), S(CLBlastTempBufferAllocFailure),
    S(CLBlastOpenCLOutOfResources), S(CLBlastOpenCLOutOfHostMemory), S(CLBlastOpenCLBuildProgramFailure),
    S(CLBlastInvalidValue), S(CLBlastInvalidCommandQueue), S(CLBlastInvalidMemObject), S(CLBlastInvalidBinary),
    S(CLBlastInvalidBuildOptions), S(CLBlastInvalidProgram), S(CLBlastInvalidProgramExecutable),
    S(CLBlastInvalidKernelName), S(CLBlastInvalidKernelDefinition), S(CLBlastInvalidKernel),
    S(CLBlastInvalidArgIndex), S(CLBlastInvalidArgValue), S(CLBlastInvalidArgSize), S(CLBlastInvalidKernelArgs),
    S(CLBlastInvalidLocalNumDimensions), S(CLBlastInvalidLocalThreadsTotal), S(CLBlastInvalidLocalThreadsDim),
    S(CLBlastInvalidGlobalOffset), S(CLBlastInvalidEventWaitList), S(CLBlastInvalidEvent),
    S(CLBlastInvalidOperation), S(CLBlastInvalidBufferSize), S(CLBlastInvalidGlobalWorkSize),
    S(CLBlastNotImplemented), S(CLBlastInvalidMatrixA), S(CLBlastInvalidMatrixB), S(CLBlastInvalidMatrixC),
    S(CLBlastInvalidVectorX), S(CLBlastInvalidVectorY), S(CLBlastInvalidDimension), S(CLBlastInvalidLeadDimA),
    S(CLBlastInvalidLeadDimB), S(CLBlastInvalidLeadDimC), S(CLBlastInvalidIncrementX), S(CLBlastInvalidIncrementY),
    S(CLBlastInsufficientMemoryA), S(CLBlastInsufficientMemoryB), S(CLBlastInsufficientMemoryC),
    S(CLBlastInsufficientMemoryX), S(CLBlastInsufficientMemoryY), S(CLBlastInsufficientMemoryTemp),
    S(CLBlastInvalidBatchCount), S(CLBlastInvalidOverrideKernel), S(CLBlastMissingOverrideParameter),
    S(CLBlastInvalidLocalMemUsage), S(CLBlastNoHalfPrecision), S(CLBlastNoDoublePrecision),
    S(CLBlastInvalidVectorScalar), S(CLBlastInsufficientMemoryScalar), S(CLBlastDatabaseError),
    S(CLBlastUnknownError), S(CLBlastUnexpectedError),
};
#undef S

/* The name of code among the names starting with prefix, or NULL. */
static const char *find_name(int code, const char *prefix) {
    for (size_t i = 0; i < CD_ARRAY_LEN(status_names); i++)
        if (status_names[i].code == code && !strncmp(status_names[i].name, prefix, strlen(prefix)))
            return status_names[i].name;
    return NULL;
}

const char *cd_cl_status_name(cl_int s) {
    const char *n = find_name(s, "CL_");
    return n ? n : "unknown OpenCL status";
}

const char *cd_cl_status_hint(cl_int s) {
    switch (s) {
    case CL_MEM_OBJECT_ALLOCATION_FAILURE:
    case CL_OUT_OF_RESOURCES:
        return "the device ran out of memory or resources: lower train.batch_size or the input size "
               "(augment.scales, augment.max_size), or pick a device with more memory (cldetr devices)";
    case CL_OUT_OF_HOST_MEMORY:
        return "the host ran out of memory: close other programs or lower train.batch_size";
    case CL_INVALID_WORK_GROUP_SIZE:
    case CL_INVALID_WORK_ITEM_SIZE:
        return "the work-group size does not suit this device; please report it with `cldetr devices` output";
    case CL_BUILD_PROGRAM_FAILURE:
    case CL_COMPILE_PROGRAM_FAILURE:
        return "a kernel did not compile for this device; the compiler log is above";
    case CL_INVALID_BINARY:
        return "a cached kernel binary is stale; delete ~/.cache/cldetr (or $XDG_CACHE_HOME/cldetr)";
    case CL_DEVICE_NOT_FOUND:
    case -1001:
        return "no OpenCL device: install pocl-opencl-icd for CPUs or your GPU vendor's OpenCL driver";
    case CL_INVALID_KERNEL_ARGS:
    case CL_INVALID_ARG_INDEX:
    case CL_INVALID_ARG_SIZE:
    case CL_INVALID_ARG_VALUE:
        return "a kernel was launched with wrong arguments: this is a bug in cldetr, please report it";
    default:
        return "this is unexpected; run `cldetr selftest` on this device and report its output";
    }
}

const char *cd_clblast_status_name(int s) {
    const char *n = find_name(s, "CLBlast");
    return n ? n : cd_cl_status_name(s);
}

void cd_cl_fail(cl_int status, const char *expr, const char *file, int line) {
    cd_fatal("OpenCL call failed: %s returned %s (%d) at %s:%d\n  hint: %s",
             expr, cd_cl_status_name(status), (int)status, file, line, cd_cl_status_hint(status));
}

void cd_clblast_fail(int status, const char *expr, const char *file, int line) {
    const char *hint = "run `cldetr selftest` on this device; delete the GEMM tuning in the cache folder if you made one";
    if (status == CLBlastTempBufferAllocFailure || status == CLBlastOpenCLOutOfResources ||
        status == CLBlastInsufficientMemoryTemp)
        hint = cd_cl_status_hint(CL_MEM_OBJECT_ALLOCATION_FAILURE);
    cd_fatal("CLBlast call failed: %s returned %s (%d) at %s:%d\n  hint: %s",
             expr, cd_clblast_status_name(status), status, file, line, hint);
}
