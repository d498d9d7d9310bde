import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createHttpApi } from './api';
import { App } from './App';
import { ErrorBoundary } from './ErrorBoundary';
import { createLiveStreamSubscriber } from './posts-stream';
import './styles.css';

const container = document.getElementById('root');
if (!container) throw new Error('index.html has no #root element');

createRoot(container).render(
  <StrictMode>
    <ErrorBoundary>
      <App api={createHttpApi()} subscribe={createLiveStreamSubscriber()} />
    </ErrorBoundary>
  </StrictMode>,
);
