"""The mutating admission webhook: AdmissionReview in, JSONPatch out, around the pure core."""
