/* OpenCL and CLBlast status names and hints, and the fatal reporters behind
 * CL_CHECK / CLBLAST_CHECK. */
#include <stdio.h>
#include <clblast_c.h>

#include "cldetr/device.h"

const char *cd_cl_status_name(cl_int s) {
    switch (s) {
#define N(x) case x: return #x;
    N(CL_SUCCESS) N(CL_DEVICE_NOT_FOUND) N(CL_DEVICE_NOT_AVAILABLE) N(CL_COMPILER_NOT_AVAILABLE)
    N(CL_MEM_OBJECT_ALLOCATION_FAILURE) N(CL_OUT_OF_RESOURCES) N(CL_OUT_OF_HOST_MEMORY)
    N(CL_PROFILING_INFO_NOT_AVAILABLE) N(CL_MEM_COPY_OVERLAP) N(CL_IMAGE_FORMAT_MISMATCH)
    N(CL_IMAGE_FORMAT_NOT_SUPPORTED) N(CL_BUILD_PROGRAM_FAILURE) N(CL_MAP_FAILURE)
    N(CL_MISALIGNED_SUB_BUFFER_OFFSET) N(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    N(CL_COMPILE_PROGRAM_FAILURE) N(CL_LINKER_NOT_AVAILABLE) N(CL_LINK_PROGRAM_FAILURE)
    N(CL_DEVICE_PARTITION_FAILED) N(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
    N(CL_INVALID_VALUE) N(CL_INVALID_DEVICE_TYPE) N(CL_INVALID_PLATFORM) N(CL_INVALID_DEVICE)
    N(CL_INVALID_CONTEXT) N(CL_INVALID_QUEUE_PROPERTIES) N(CL_INVALID_COMMAND_QUEUE)
    N(CL_INVALID_HOST_PTR) N(CL_INVALID_MEM_OBJECT) N(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
    N(CL_INVALID_IMAGE_SIZE) N(CL_INVALID_SAMPLER) N(CL_INVALID_BINARY) N(CL_INVALID_BUILD_OPTIONS)
    N(CL_INVALID_PROGRAM) N(CL_INVALID_PROGRAM_EXECUTABLE) N(CL_INVALID_KERNEL_NAME)
    N(CL_INVALID_KERNEL_DEFINITION) N(CL_INVALID_KERNEL) N(CL_INVALID_ARG_INDEX)
    N(CL_INVALID_ARG_VALUE) N(CL_INVALID_ARG_SIZE) N(CL_INVALID_KERNEL_ARGS)
    N(CL_INVALID_WORK_DIMENSION) N(CL_INVALID_WORK_GROUP_SIZE) N(CL_INVALID_WORK_ITEM_SIZE)
    N(CL_INVALID_GLOBAL_OFFSET) N(CL_INVALID_EVENT_WAIT_LIST) N(CL_INVALID_EVENT)
    N(CL_INVALID_OPERATION) N(CL_INVALID_GL_OBJECT) N(CL_INVALID_BUFFER_SIZE)
    N(CL_INVALID_MIP_LEVEL) N(CL_INVALID_GLOBAL_WORK_SIZE) N(CL_INVALID_PROPERTY)
    N(CL_INVALID_IMAGE_DESCRIPTOR) N(CL_INVALID_COMPILER_OPTIONS) N(CL_INVALID_LINKER_OPTIONS)
    N(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef N
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "unknown OpenCL status";
    }
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
    switch (s) {
#define N(x) case x: return #x;
    N(CLBlastSuccess) N(CLBlastOpenCLCompilerNotAvailable) N(CLBlastTempBufferAllocFailure)
    N(CLBlastOpenCLOutOfResources) N(CLBlastOpenCLOutOfHostMemory) N(CLBlastOpenCLBuildProgramFailure)
    N(CLBlastInvalidValue) N(CLBlastInvalidCommandQueue) N(CLBlastInvalidMemObject) N(CLBlastInvalidBinary)
    N(CLBlastInvalidBuildOptions) N(CLBlastInvalidProgram) N(CLBlastInvalidProgramExecutable)
    N(CLBlastInvalidKernelName) N(CLBlastInvalidKernelDefinition) N(CLBlastInvalidKernel)
    N(CLBlastInvalidArgIndex) N(CLBlastInvalidArgValue) N(CLBlastInvalidArgSize) N(CLBlastInvalidKernelArgs)
    N(CLBlastInvalidLocalNumDimensions) N(CLBlastInvalidLocalThreadsTotal) N(CLBlastInvalidLocalThreadsDim)
    N(CLBlastInvalidGlobalOffset) N(CLBlastInvalidEventWaitList) N(CLBlastInvalidEvent)
    N(CLBlastInvalidOperation) N(CLBlastInvalidBufferSize) N(CLBlastInvalidGlobalWorkSize)
    N(CLBlastNotImplemented) N(CLBlastInvalidMatrixA) N(CLBlastInvalidMatrixB) N(CLBlastInvalidMatrixC)
    N(CLBlastInvalidVectorX) N(CLBlastInvalidVectorY) N(CLBlastInvalidDimension)
    N(CLBlastInvalidLeadDimA) N(CLBlastInvalidLeadDimB) N(CLBlastInvalidLeadDimC)
    N(CLBlastInvalidIncrementX) N(CLBlastInvalidIncrementY) N(CLBlastInsufficientMemoryA)
    N(CLBlastInsufficientMemoryB) N(CLBlastInsufficientMemoryC) N(CLBlastInsufficientMemoryX)
    N(CLBlastInsufficientMemoryY) N(CLBlastInsufficientMemoryTemp) N(CLBlastInvalidBatchCount)
    N(CLBlastInvalidOverrideKernel) N(CLBlastMissingOverrideParameter) N(CLBlastInvalidLocalMemUsage)
    N(CLBlastNoHalfPrecision) N(CLBlastNoDoublePrecision) N(CLBlastInvalidVectorScalar)
    N(CLBlastInsufficientMemoryScalar) N(CLBlastDatabaseError) N(CLBlastUnknownError)
    N(CLBlastUnexpectedError)
#undef N
    default: return cd_cl_status_name(s);
    }
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
