import { useId, useState, type FormEvent } from 'react';
import { ApiRequestError } from './api';

export interface SingleFieldFormProps {
  label: string;
  submitLabel: string;
  /** The API's name for this input (`title`, `content`): its validation errors show next to it. */
  fieldName: string;
  maxLength: number;
  /** Shown without a round trip when the input is blank. */
  blankMessage: string;
  /** Rejects with an `ApiRequestError` to have its message shown; resolving clears the input. */
  onSubmit: (value: string) => Promise<void>;
  className?: string;
}

/** One labelled text input and a submit button: the shape of both forms on the page. */
export function SingleFieldForm({ label, submitLabel, fieldName, maxLength, blankMessage, onSubmit, className }: SingleFieldFormProps) {
  const inputId = useId();
  const fieldErrorId = useId();
  const formErrorId = useId();
  const [value, setValue] = useState('');
  const [sending, setSending] = useState(false);
  const [fieldError, setFieldError] = useState<string>();
  const [formError, setFormError] = useState<string>();

  async function submit() {
    if (value.trim() === '') {
      setFieldError(blankMessage);
      setFormError(undefined);
      return;
    }
    setSending(true);
    setFieldError(undefined);
    setFormError(undefined);
    try {
      await onSubmit(value);
      setValue('');
    } catch (error) {
      if (error instanceof ApiRequestError) {
        const messageForField = error.fieldErrors[fieldName];
        if (messageForField) setFieldError(messageForField);
        else setFormError(error.message);
      } else {
        // A bug rather than a failed request: still tell the reader, and keep the details for us.
        console.error(error);
        setFormError('Something went wrong. Try again.');
      }
    } finally {
      setSending(false);
    }
  }

  function handleSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    // A second Enter while the first request is on its way must not send the text twice.
    if (sending) return;
    void submit();
  }

  const describedBy = [fieldError && fieldErrorId, formError && formErrorId].filter(Boolean).join(' ');

  return (
    <form className={['entry-form', className].filter(Boolean).join(' ')} onSubmit={handleSubmit} noValidate aria-busy={sending}>
      <label htmlFor={inputId}>{label}</label>
      <div className="entry-row">
        <input
          id={inputId}
          name={fieldName}
          type="text"
          autoComplete="off"
          value={value}
          onChange={(event) => setValue(event.target.value)}
          maxLength={maxLength}
          // Read-only rather than disabled: keeps focus in the input, and the text that is being sent.
          readOnly={sending}
          aria-invalid={fieldError ? true : undefined}
          aria-describedby={describedBy || undefined}
        />
        <button type="submit" disabled={sending}>
          {submitLabel}
        </button>
      </div>
      {/* Always rendered so screen readers announce a message the moment it appears. */}
      <div aria-live="polite">
        {fieldError && (
          <p id={fieldErrorId} className="field-error">
            {fieldError}
          </p>
        )}
        {formError && (
          <p id={formErrorId} className="form-error">
            {formError}
          </p>
        )}
      </div>
    </form>
  );
}
