import { useMutation, type UseMutationResult } from "@tanstack/react-query";
import { errorText } from "./QueryState";

/** A request behind a button: pending while it runs, its error as text. */
export function useAction<TArgs, TResult>(
  run: (args: TArgs) => Promise<TResult>,
  onDone?: (result: TResult) => void,
): UseMutationResult<TResult, Error, TArgs> & { errorMessage: string | null } {
  const mutation = useMutation<TResult, Error, TArgs>({
    mutationFn: run,
    ...(onDone ? { onSuccess: onDone } : {}),
  });
  return { ...mutation, errorMessage: mutation.error ? errorText(mutation.error) : null };
}
