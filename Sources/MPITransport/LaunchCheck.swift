import Foundation

/// Detects the classic launch mistake on clusters: a launcher started N tasks, but each process
/// initialised MPI as a singleton ("rank 0 of 1") because the launcher and this MPI library do not
/// talk (e.g. `srun` without `--mpi=pmi2`, or Open MPI's mpirun with an MPICH build). Running on
/// would make N independent jobs write the same output.
public enum LaunchCheck {
    /// A description of the multi-task launch when MPI nevertheless sees a world of one.
    public static func singletonProblem(worldSize: Int, environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard worldSize == 1 else { return nil }
        let launchers: [(String, String)] = [
            ("SLURM_STEP_NUM_TASKS", "srun"), ("SLURM_NTASKS", "Slurm"), ("PMI_SIZE", "a PMI launcher"),
            ("PMIX_SIZE", "a PMIx launcher"), ("OMPI_COMM_WORLD_SIZE", "Open MPI's mpirun"), ("MPI_LOCALNRANKS", "mpiexec"),
        ]
        for (variable, launcher) in launchers {
            // SLURM_NTASKS is set in every batch job; it only counts when this process is one of a step's tasks.
            if variable == "SLURM_NTASKS", environment["SLURM_PROCID"] == nil { continue }
            if let value = environment[variable].flatMap({ Int($0) }), value > 1 {
                return "\(launcher) started \(value) tasks (\(variable)=\(value)) but MPI sees a world of 1: the launcher and this MPICH do not talk. " +
                    "Use MPICH's mpirun/mpiexec, or srun --mpi=pmi2; stopping rather than running \(value) independent jobs"
            }
        }
        return nil
    }
}
