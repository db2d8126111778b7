import * as v from "valibot";
import { openRegistry } from "./open.ts";

/** A registry URL as an option, opened at validation time so a bad one names the flag. */
export const registryField = v.pipe(
  v.string("expected a registry URL"),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    try {
      return openRegistry(dataset.value);
    } catch (error) {
      addIssue({ message: (error as Error).message });
      return NEVER;
    }
  }),
);
